/**
 * The `@azure/functions-core` package as the app's `@azure/functions` finds it under devhost: a
 * real module file on the library's search path (see `../../../core-link.ts`), which answers with
 * the host's registry. The Node worker provides the same module in Azure.
 */
import { functionsCoreModule } from '../../../core-api';

export = functionsCoreModule;
