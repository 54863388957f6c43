"""The chat use case: sending, regenerating and editing a reply, its
generation, events, cancels, limits, save retries and the conversation title.
"""
