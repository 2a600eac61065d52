"""The embedded stack: every production component's local stand-in, on loopback, state under one directory."""
