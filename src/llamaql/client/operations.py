"""The GraphQL documents the terminal client sends (names from schema.graphql, the
server's contract at the repository root)."""

from __future__ import annotations

PAGE_SIZE = 100

_EVENT = """
    __typename
    ... on MessageQueued { assistantMessageId position loading userMessage { id } }
    ... on TokenDelta { messageId text }
    ... on MessageCompleted { message { ...Reply } }
    ... on MessageFailed { code reason retryable assistantMessage { ...Reply } }
"""
_REPLY = """
fragment Reply on Message {
  id status text finishReason model
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

# A reply followed from its `after`-th character: from another connection than the one
# that sent it (after a dropped socket), or from another client.
REPLY_STREAM = (
    """
subscription Follow($messageId: ID!, $after: Int) {
  replyStream(messageId: $messageId, after: $after) {"""
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
      edges { node { id role status text model } }
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
mutation Create($title: String, $model: String) {
  createConversation(input: {title: $title, model: $model}) { id title model }
}
"""

MODELS = "query Models { models { name default loaded loading fileSize quantization } }"

# Checks a name (BAD_USER_INPUT when the server has no such model).
MODEL_NAMED = "query Model($name: String) { model(name: $name) { name } }"

CONVERSATION_MODEL = "query ConversationModel($id: ID!) { conversation(id: $id) { model } }"

SET_MODEL = """
mutation SetModel($id: ID!, $model: String) {
  updateConversation(id: $id, input: {model: $model}) { id model }
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
