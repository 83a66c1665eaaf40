"""Evidence: deterministic observations over the alert and the cluster, and the verdict they give."""
