"""Thin root-field resolvers: context -> service call -> schema type."""
