/** The DynamoDB control store's code and the DynamoDB SDK, loaded when it opens. */
export const loadDynamoControl = async () => (await import('./open.ts')).openDynamoControl;
