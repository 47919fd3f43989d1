"""xecr: Docker credential helper and login daemon for Amazon ECR across AWS accounts.

Kept empty on purpose: every `docker pull` imports this package, and the
cached path must stay cheap to start.
"""

__version__ = "0.1.0"
