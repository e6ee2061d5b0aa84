import type { InvokeCommandOutput, LambdaClient } from '@aws-sdk/client-lambda';
import { loadConfig } from '../config/load.ts';
import type { RunReport } from '../core/types.ts';
import { describeCause } from '../errors.ts';
import { dataClassFunction, functionEnvVar } from '../serverless/naming.ts';
import type { ManualPayloadInput } from '../serverless/payload.ts';
import { type HandlerResult, isErrorResult } from '../serverless/result.ts';
import { type CliIO, selectPolicies } from './context.ts';
import { parseInstant, parsePositiveInt } from './flags.ts';
import { exitCodeFor, printReports } from './run.ts';

/**
 * `retention invoke <policy>`: runs the policy in its deployed function (RequestResponse) and
 * prints the report as `run` does. Only the config is read locally (to find the policy's data
 * class); the control store and the data are the cloud's. Credentials and region come from the
 * AWS SDK's usual environment (`AWS_PROFILE`, `AWS_REGION`, …).
 *
 * Function name: `RETENTION_FUNCTION_<CLASS>` if set, else the name `sst.config.ts` gives it:
 * `<RETENTION_APP or data-retention>-<RETENTION_STAGE or production>-<class>`.
 */
export interface InvokeFlags {
  dryRun?: boolean;
  limit?: string;
  before?: string;
  force?: boolean;
  continue?: boolean;
  json?: boolean;
  strict?: boolean;
}

export async function invokeCommand(
  io: CliIO,
  configFile: string | undefined,
  policyName: string,
  flags: InvokeFlags,
  lambda?: LambdaClient,
): Promise<number> {
  const { config } = await loadConfig(configFile, io.cwd);
  const [policy] = selectPolicies(config, [policyName], false, '<policy>');
  const limit = parsePositiveInt('--limit', flags.limit);
  const before = parseInstant('--before', flags.before);
  const payload: ManualPayloadInput = {
    policy: policy!.name,
    ...(flags.dryRun ? { dryRun: true } : {}),
    ...(limit !== undefined ? { limit } : {}),
    ...(before !== undefined ? { before: before.toISOString() } : {}),
    ...(flags.force ? { force: true } : {}),
    ...(flags.continue ? { continue: true } : {}),
  };
  const target = dataClassFunction(io.env, policy!.class);

  const { InvokeCommand, LambdaClient } = await import('@aws-sdk/client-lambda');
  const client = lambda ?? new LambdaClient({});
  let response: InvokeCommandOutput;
  try {
    response = await client.send(
      new InvokeCommand({
        FunctionName: target,
        InvocationType: 'RequestResponse',
        Payload: new TextEncoder().encode(JSON.stringify(payload)),
      }),
    );
  } catch (error) {
    io.stderr.write(
      `error: cannot invoke ${target}: ${describeCause(error)} (check AWS credentials and region, or set ${functionEnvVar(policy!.class)})\n`,
    );
    return 1;
  }
  const text = response.Payload ? new TextDecoder().decode(response.Payload) : '';
  if (response.FunctionError) {
    // An uncaught error in the function: Lambda returns { errorType, errorMessage } as the payload.
    const failure = parseJson(text) as { errorType?: string; errorMessage?: string } | null;
    io.stderr.write(
      `error: ${target} failed: ${failure?.errorType ?? response.FunctionError}: ${failure?.errorMessage ?? text}\n`,
    );
    return 1;
  }
  const result = parseJson(text) as HandlerResult | null;
  if (!result || typeof result !== 'object') {
    io.stderr.write(`error: ${target} returned no report: ${text.slice(0, 200)}\n`);
    return 1;
  }
  if (isErrorResult(result)) {
    if (flags.json) io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    io.stderr.write(`${result.error.message}\nnothing was changed.\n`);
    return 2;
  }
  const report: RunReport = result;
  printReports(io, [report], flags);
  if (flags.continue && report.status === 'partial' && report.stopReason === 'budget') {
    io.stderr.write(
      `${report.policy}: continuing in the background; follow with: retention history --policy ${report.policy}\n`,
    );
  }
  return exitCodeFor([report], flags.strict ?? false);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
