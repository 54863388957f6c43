"""`llamaql chat`: a terminal client on the GraphQL API.

It uses the API exactly as any other client does (HTTP POSTs for queries and mutations,
a `graphql-transport-ws` WebSocket for the reply streams), so it runs against a local or
a remote server alike and knows nothing of the server's internals.

- `api`: identity headers, GraphQL over HTTP, coded errors (`ApiError`)
- `stream`: one subscription over graphql-transport-ws
- `operations`: the GraphQL documents
- `console`: output with hostile text made inert
- `reply`: one reply as it streams, and what Ctrl-C does to it
- `session`: the conversation commands (`/list`, `/new`, ...) and sending
- `terminal`: the prompt, Ctrl-C and Ctrl-D
- `command`: the `llamaql chat` arguments and environment
"""
