"""End-to-end tests against a real dockerd, docker-registry and skopeo."""
