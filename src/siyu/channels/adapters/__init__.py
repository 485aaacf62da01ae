"""One adapter per provider. Each speaks its provider's real protocol and turns every answer
into an outcome; none raises for a provider's refusal or a network failure."""
