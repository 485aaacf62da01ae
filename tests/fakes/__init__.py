"""Local fakes of the providers siyu talks to. Each is a real HTTP server on 127.0.0.1 that
checks signatures the way its provider does and answers as the provider does, errors included."""
