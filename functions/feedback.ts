/**
 * C2D feedback timer: each run drains IoT Hub's feedback receiver for FEEDBACK_DRAIN_SECONDS
 * and records every outcome in the message status table (lib/messages/feedback.ts).
 */
import { app } from '@azure/functions';
import { createFeedbackTimer } from '../lib/messages/feedback-timer';
import { appRoot } from '../lib/app/services';
import { SettingNames } from '../lib/settings';

export const feedbackTimer = createFeedbackTimer(() => appRoot.api());

app.timer('feedback', {
  schedule: `%${SettingNames.feedbackSchedule}%`,
  handler: feedbackTimer,
});
