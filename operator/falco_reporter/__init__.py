"""falco-reporter: Falco alerts in, enriched and reviewed reports out."""

__version__ = "0.1.0"

API_GROUP = "falcoreporter.io"
API_VERSION = "v1alpha1"
