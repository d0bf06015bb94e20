/** Timer triggers: the binding's NCRONTAB or TimeSpan schedule, run by a `TimerRunner`. */
import { join } from 'node:path';
import { invokeWithRetries, toRetryPolicy } from '../retry';
import { parseSchedule } from '../timer/schedule';
import { TimerRunner } from '../timer/timer-runner';
import type { TriggerProvider } from './provider';
import { resolveSetting, text } from './provider';

export const timerTrigger: TriggerProvider = {
  handles: (type) => type.toLowerCase() === 'timertrigger',
  build({ fn, name, triggerName, binding }, context) {
    const { runtime } = context;
    const schedule = parseSchedule(
      resolveSetting(context, text(binding.schedule, ''), `function "${name}" schedule`),
      context.settings.WEBSITE_TIME_ZONE,
    );
    const policy = toRetryPolicy(fn.metadata.retryOptions, name);
    const runner = new TimerRunner({
      name,
      schedule,
      runOnStartup: binding.runOnStartup === true,
      useMonitor: binding.useMonitor !== false,
      statusDir: join(context.dataDir, 'timers'),
      onSkip: () => runtime.log.info(`'${name}' is still running; skipping this occurrence`),
      run: async (info) => {
        await invokeWithRetries({
          policy,
          input: { inputData: [{ name: triggerName, data: { json: JSON.stringify(info) } }] },
          invoke: (input) => runtime.invoke(fn, input),
          sleep: runtime.retrySleep,
        });
      },
    });
    runtime.timers.push(runner);
    context.timerByName.set(name.toLowerCase(), runner);
    return { name, trigger: `timer (${schedule.text})` };
  },
};
