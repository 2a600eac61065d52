"""Shared package of the claims data platform: settings, data contracts (topics, schemas, tables), clients.

Services (`services/*`) and lambdas (`lambdas/*`) import this package; they never import each other.
"""
