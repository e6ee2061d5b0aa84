import * as z from 'zod';
import { type Problem, problemCheck } from '../core/issues.ts';
import { clip } from '../errors.ts';

/**
 * Checks of what AWS backends (S3, DynamoDB) take, shared by the store and control-store schemas.
 * A name AWS would refuse, or an endpoint the SDK would read as something else, is a config
 * error at parse time rather than a failed request in the middle of a run.
 */

/** An echo of `text` that never shows credentials (`user:secret@host`) written into it. */
function quoted(text: string): string {
  return text.includes('@') ? 'it' : JSON.stringify(clip(text));
}

const ENDPOINT_FIX =
  'use http:// or https:// and a host, e.g. https://s3.eu-west-1.amazonaws.com or http://localhost:9000';

/** S3 / DynamoDB-compatible endpoints: an http(s) URL of a server, nothing else (`file:`, bare host:port). */
export function endpointProblem(endpoint: string): Problem | undefined {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return { message: `${quoted(endpoint)} is not a URL`, fix: ENDPOINT_FIX };
  }
  if (url.username || url.password) {
    const fix = 'remove "user:password@": credentials come from the AWS environment (profile, role, AWS_ACCESS_KEY_ID)';
    return { message: 'has credentials in it', fix };
  }
  const shown = quoted(endpoint);
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return { message: `${shown} is not an http(s) URL`, fix: ENDPOINT_FIX };
  if (url.search || url.hash)
    return { message: `${shown} has a query or a fragment`, fix: 'remove everything from "?" or "#" on' };
  return undefined;
}

export const Endpoint = z.string().superRefine(problemCheck(endpointProblem));

/** us-east-1, eu-central-2, us-gov-west-1, cn-north-1, … */
const AWS_REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

/**
 * On AWS the region must be one (a typo would send requests to a host that does not exist);
 * S3-compatible servers take other names ("auto" for R2), so with an endpoint anything goes.
 */
export function checkRegion(
  store: { region?: string | undefined; endpoint?: string | undefined },
  ctx: z.RefinementCtx,
): void {
  const { region, endpoint } = store;
  if (region === undefined || region === '' || endpoint !== undefined || AWS_REGION.test(region)) return;
  const fix = 'use a region code such as "eu-west-1" (any name goes with an endpoint)';
  ctx.addIssue({
    code: 'custom',
    path: ['region'],
    message: `${JSON.stringify(clip(region))} is not an AWS region`,
    params: { fix },
  });
}

/** DynamoDB table and index names: 3 to 255 of A-Z a-z 0-9 _ - . (the table's name, not its ARN). */
function dynamoNameProblem(what: 'table' | 'index', name: string): Problem | undefined {
  const shown = JSON.stringify(clip(name));
  const fix = `use the ${what} name as DynamoDB lists it`;
  if (name.length < 3 || name.length > 255)
    return { message: `${shown} is ${name.length} characters long: DynamoDB ${what} names have 3 to 255`, fix };
  const bad = /[^A-Za-z0-9_.-]/.exec(name)?.[0];
  if (bad === undefined) return undefined;
  const message = `${shown} contains ${JSON.stringify(bad)}: DynamoDB ${what} names have only letters, digits, "_", "-" and "."`;
  return { message, fix: /[:/]/.test(bad) ? `give the ${what} name alone, not an ARN` : fix };
}

export const DynamoTableName = z.string().superRefine(problemCheck((name: string) => dynamoNameProblem('table', name)));
export const DynamoIndexName = z.string().superRefine(problemCheck((name: string) => dynamoNameProblem('index', name)));

/** Key attribute names (partition, sort, an index's keys): 1 to 255 bytes. */
export const DynamoKeyAttribute = z
  .string()
  .min(1)
  .superRefine(
    problemCheck((name: string) => {
      const bytes = Buffer.byteLength(name, 'utf8');
      if (bytes <= 255) return undefined;
      return {
        message: `is ${bytes} bytes long: DynamoDB key attribute names have at most 255`,
        fix: 'use the attribute name as the table defines it',
      };
    }),
  );
