"""The operator: kopf handlers (thin) and the reconcile service they call."""
