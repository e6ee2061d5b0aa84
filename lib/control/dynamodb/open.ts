import { dynamoClientFor } from '../../aws/dynamo.ts';
import type { ControlOpener } from '../../core/backend.ts';
import { systemClock } from '../../core/types.ts';
import type { DynamoControlConfig } from './schema.ts';
import { DynamoControlStore } from './store.ts';

/** No connection to hold, so nothing to fall back to. */
export const openDynamoControl: ControlOpener<DynamoControlConfig> = async (config) => {
  const control = new DynamoControlStore({ client: dynamoClientFor(config), table: config.table, clock: systemClock });
  await control.migrate();
  return { control, location: `DynamoDB table ${config.table}`, close: () => control.close() };
};
