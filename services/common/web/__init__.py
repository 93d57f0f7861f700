"""HTTP pieces every service's API shares: bearer authentication, error bodies, body limit."""
