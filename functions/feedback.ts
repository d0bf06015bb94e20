/**
 * C2D feedback timer: each run drains IoT Hub's feedback receiver for FEEDBACK_DRAIN_SECONDS
 * and records every outcome in the message status table (lib/messages/feedback.ts).
 */
import { app } from '@azure/functions';
import type { InvocationContext, Timer } from '@azure/functions';
import { apiServices, type ApiServices } from '../lib/api/services';
import { describeError } from '../lib/http/redact';
import { SettingNames } from '../lib/settings';

export function createFeedbackTimer(services: () => ApiServices) {
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

export const feedbackTimer = createFeedbackTimer(apiServices);

app.timer('feedback', {
  schedule: `%${SettingNames.feedbackSchedule}%`,
  handler: feedbackTimer,
});
