"""The HTTP plumbing under PlaymentClient: deadlines, limits, proxies and TLS."""
