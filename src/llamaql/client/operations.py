"""The GraphQL documents the terminal client sends (names from schema.graphql, the
server's contract at the repository root)."""

from __future__ import annotations

PAGE_SIZE = 100

_EVENT = """
    __typename
    ... on MessageQueued { assistantMessageId position userMessage { id } }
    ... on TokenDelta { messageId text }
    ... on MessageCompleted { message { ...Reply } }
    ... on MessageFailed { code reason retryable assistantMessage { ...Reply } }
"""
_REPLY = """
fragment Reply on Message {
  id status text finishReason
  usage { completionTokens tokensPerSecond }
}
"""

SEND_MESSAGE = (
    """
subscription Send($conversationId: ID!, $text: String!, $options: GenerationOptionsInput) {
  sendMessage(conversationId: $conversationId, text: $text, options: $options) {"""
    + _EVENT
    + "}}"
    + _REPLY
)

REGENERATE = (
    """
subscription Regenerate($messageId: ID!, $options: GenerationOptionsInput) {
  regenerate(messageId: $messageId, options: $options) {"""
    + _EVENT
    + "}}"
    + _REPLY
)

EDIT_MESSAGE = (
    """
subscription Edit($messageId: ID!, $text: String!, $options: GenerationOptionsInput) {
  editMessage(messageId: $messageId, text: $text, options: $options) {"""
    + _EVENT
    + "}}"
    + _REPLY
)

MODEL = "query { model { name contextSize backend } }"

CONVERSATIONS = """
query Conversations($first: Int!) {
  conversations(first: $first) { totalCount edges { node { id title updatedAt } } }
}
"""

# The current branch, oldest first, a page at a time.
MESSAGES = """
query Messages($id: ID!, $first: Int!, $after: String) {
  conversation(id: $id) {
    id title
    messages(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      edges { node { id role status text } }
    }
  }
}
"""

# Only /branch asks for siblings, so everything else works on servers without branches.
BRANCH_MESSAGES = """
query BranchMessages($id: ID!, $first: Int!, $after: String) {
  conversation(id: $id) {
    id title
    messages(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      edges { node { id role status text siblingIds } }
    }
  }
}
"""

CREATE = """
mutation Create($title: String) {
  createConversation(input: {title: $title}) { id title }
}
"""

RENAME = """
mutation Rename($id: ID!, $title: String!) {
  updateConversation(id: $id, input: {title: $title}) { id title }
}
"""

DELETE = "mutation Delete($id: ID!) { deleteConversation(id: $id) }"

CANCEL = "mutation Cancel($id: ID!) { cancelGeneration(messageId: $id) }"

SELECT_BRANCH = "mutation Select($id: ID!) { selectBranch(messageId: $id) { id } }"

SEARCH = """
query Search($query: String!) {
  search(query: $query, first: 10) {
    totalCount
    edges { node { conversation { id title } message { role } snippet } }
  }
}
"""

CONTEXT_USAGE = """
query Usage($id: ID!, $text: String) {
  contextUsage(conversationId: $id, text: $text) {
    contextSize promptTokens replyTokens droppedMessages fits
  }
}
"""
