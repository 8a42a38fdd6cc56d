"""Integration tests across hosts: parties in separate Linux network namespaces."""
