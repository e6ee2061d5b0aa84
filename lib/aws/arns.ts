import type { AwsScope } from '../core/backend.ts';

/** A DynamoDB table's ARN, in the table's own region where the config names one. */
export function dynamoTableArn(aws: AwsScope, region: string | undefined, table: string): string {
  return `arn:aws:dynamodb:${region ?? aws.region}:${aws.accountId}:table/${table}`;
}
