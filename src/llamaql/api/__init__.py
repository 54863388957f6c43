"""The GraphQL API: the Strawberry schema, its resolvers, the per-operation
context and loaders, the query cost limit. Depends only on services, ports, auth,
config and itself; it turns service results into Strawberry types.
"""
