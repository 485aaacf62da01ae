"""WeChat callbacks: official account (and, later, WeCom) event pushes into events and identities."""
