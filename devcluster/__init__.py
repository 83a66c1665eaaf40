"""A local Kubernetes control plane (etcd + kube-apiserver + kube-controller-manager) on loopback.

Used by the tests, ``make cluster-up``/``cluster-down``, ``make demo`` and the benchmarks. Import
the submodules directly (``devcluster.cluster``, ``devcluster.crds``...): this package stays empty
so that importing ``devcluster.seed`` does not need ``cryptography``.
"""
