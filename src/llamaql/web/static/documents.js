// Every GraphQL document the chat page sends, in one place: tests/integration/api/
// test_chat_page.py validates each of them against the server's schema.

export const PAGE_SIZE = 50;
export const SEARCH_PAGE_SIZE = 20;

const MESSAGE_FIELDS = `id role text status finishReason createdAt parentId siblingIds model
  usage { completionTokens tokensPerSecond }`;
const CHAT_EVENT = `__typename
    ... on MessageQueued { assistantMessageId position loading userMessage { ${MESSAGE_FIELDS} } }
    ... on TokenDelta { messageId text }
    ... on MessageCompleted { message { ${MESSAGE_FIELDS} } }
    ... on MessageFailed { code reason retryable assistantMessage { ${MESSAGE_FIELDS} } }`;

export const Q_VIEWER = "query Viewer { viewer { id } }";
export const Q_CONVERSATIONS = `query Conversations($after: String) {
  conversations(first: ${PAGE_SIZE}, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { id title updatedAt } } } }`;
export const Q_MESSAGES = `query Messages($id: ID!, $after: String) {
  conversation(id: $id) { id title updatedAt model messages(first: 100, after: $after) {
    pageInfo { hasNextPage endCursor } edges { node { ${MESSAGE_FIELDS} } } } } }`;
export const Q_CONTEXT = `query Context($id: ID!, $text: String) {
  contextUsage(conversationId: $id, text: $text) {
    contextSize promptTokens replyTokens droppedMessages fits } }`;
export const Q_SEARCH = `query Search($query: String!, $after: String) {
  search(query: $query, first: ${SEARCH_PAGE_SIZE}, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { conversation { id title updatedAt } message { id role }
      snippetParts { text highlighted } } } } }`;
export const Q_MODELS = "query Models { models { name default loaded loading fileSize } }";
export const M_CREATE = `mutation Create($input: CreateConversationInput) {
  createConversation(input: $input) { id title updatedAt model } }`;
export const M_MODEL = `mutation Model($id: ID!, $model: String) {
  updateConversation(id: $id, input: {model: $model}) { id model } }`;
export const M_RENAME = `mutation Rename($id: ID!, $title: String) {
  updateConversation(id: $id, input: {title: $title}) { id title updatedAt } }`;
export const M_DELETE = "mutation Delete($id: ID!) { deleteConversation(id: $id) }";
export const M_CANCEL = "mutation Cancel($id: ID!) { cancelGeneration(messageId: $id) }";
export const M_SELECT = "mutation Select($id: ID!) { selectBranch(messageId: $id) { id } }";
export const S_SEND = `subscription Send($id: ID!, $text: String!) {
  sendMessage(conversationId: $id, text: $text) { ${CHAT_EVENT} } }`;
export const S_REGENERATE = `subscription Regenerate($id: ID!) {
  regenerate(messageId: $id) { ${CHAT_EVENT} } }`;
export const S_EDIT = `subscription Edit($id: ID!, $text: String!) {
  editMessage(messageId: $id, text: $text) { ${CHAT_EVENT} } }`;
// A reply followed from its `after`-th character (code points: backoff.js codePoints).
export const S_REPLY_STREAM = `subscription Follow($id: ID!, $after: Int) {
  replyStream(messageId: $id, after: $after) { ${CHAT_EVENT} } }`;
// The user's live feed: what other tabs and devices do, as it happens.
export const S_EVENTS = `subscription Events($since: String) {
  events(since: $since) {
    __typename
    ... on ConversationCreated { cursor conversationId }
    ... on ConversationUpdated { cursor conversationId }
    ... on ConversationDeleted { cursor conversationId }
    ... on ReplyQueued { cursor conversationId messageId }
    ... on ReplyStarted { cursor conversationId messageId }
    ... on ReplyFinished { cursor conversationId messageId status }
    ... on BranchSelected { cursor conversationId messageId }
    ... on EventsReset { cursor missed } } }`;
