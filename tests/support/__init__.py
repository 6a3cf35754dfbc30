"""Test support code (the test bed): not part of the collection."""
