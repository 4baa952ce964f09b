"""The HTTP side of the app: the messages endpoint and its checks, health, and the request middleware."""
