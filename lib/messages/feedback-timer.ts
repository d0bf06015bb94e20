/** The feedback timer's body: one bounded drain per run, with a summary line in the log. */
import type { InvocationContext, Timer } from '@azure/functions';
import { describeError } from '../http/redact';
import type { FeedbackDrainer } from './feedback';

/** What the feedback timer needs from the composition root (`lib/app/services.ts`). */
export interface FeedbackTimerServices {
  feedback: FeedbackDrainer;
  /** The run length of one feedback drain. */
  feedbackDrainMs: number;
}

export function createFeedbackTimer(services: () => FeedbackTimerServices) {
  return async (_timer: Timer, context: InvocationContext): Promise<void> => {
    const { feedback, feedbackDrainMs } = services();
    try {
      const summary = await feedback.drain(feedbackDrainMs, { warn: (text) => context.warn(text) });
      context.log(
        `feedback: ${summary.batches} batches, ${summary.records} records stored, ${summary.skipped} skipped, ${summary.malformed} malformed`,
      );
    } catch (error) {
      // Rethrown so the run shows as failed; the unsettled batches are retried next run.
      context.error(`feedback: drain failed: ${describeError(error)}`);
      throw new Error(`Feedback drain failed: ${describeError(error)}`);
    }
  };
}
