import type { RunReport } from '../core/types.ts';
import type { InputIssue } from '../errors.ts';

/**
 * What a data-class function returns: the run report, or a refusal when nothing was run. Kept
 * apart from the handler so callers (`retention invoke`) read results without loading it.
 */
export type ErrorCode = 'bad_payload' | 'unknown_policy' | 'wrong_data_class' | 'bad_config';

/** A refused invocation: nothing was deleted. `message` is the issues as the CLI prints them. */
export interface ErrorResult {
  error: { code: ErrorCode; message: string; issues: InputIssue[] };
}

export type HandlerResult = RunReport | ErrorResult;

/** A failed run's report carries `error` too; only a refusal lacks a run id. */
export function isErrorResult(result: HandlerResult): result is ErrorResult {
  return 'error' in result && !('runId' in result);
}
