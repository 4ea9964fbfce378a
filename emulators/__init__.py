"""The local stack: Google's emulators, fake-gcs-server, Triton on CPU and the functions."""
