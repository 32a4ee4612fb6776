"""Helpers the test modules share (audio, an offline Hub, fresh processes, run directories, the contract matrix
and probes, a fake speech recogniser).

A package of its own, so that no test module imports another test module (or conftest): tests/test_layering.py.
"""
