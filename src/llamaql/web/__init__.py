"""The HTTP and WebSocket edge: the Starlette app, the GraphQL view and its
WebSocket handlers, the body limit, header timeout, draining, GraphiQL and the chat
page with its static/ assets. May import api, services, ports, auth, config and the
composition root (container).
"""
