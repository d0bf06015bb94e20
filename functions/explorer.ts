/**
 * The device explorer page: GET /api/explorer/ and its assets, anonymous (the page holds no
 * secret; the data it shows comes from the keyed API with the key the user gives). In Azure,
 * protect it with App Service authentication (docs/deploy.md). Logic in lib/explorer/assets.ts.
 */
import { app } from '@azure/functions';
import { createExplorerHandler } from '../lib/explorer/assets';

export const explorerHandler = createExplorerHandler();

app.http('explorer', {
  route: 'explorer/{*path}',
  methods: ['GET', 'HEAD'],
  authLevel: 'anonymous',
  handler: explorerHandler,
});
