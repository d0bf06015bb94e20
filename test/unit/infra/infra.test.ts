/**
 * Offline checks of the Azure deployment: every Bicep file parses (tree-sitter-bicep, since the
 * Bicep CLI cannot be downloaded here), declares what the design needs, leaks no secret through
 * an output, references no registry module, and sets every app setting the code reads.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Language, Parser } from 'web-tree-sitter';
import type { Node as SyntaxNode } from 'web-tree-sitter';
import { SettingNames } from '../../../lib/settings';

const root = join(__dirname, '..', '..', '..');
const infra = join(root, 'infra');

function bicepFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return bicepFiles(path);
    return entry.name.endsWith('.bicep') ? [path] : [];
  });
}

/** Settings the app reads only when running locally; docs/deploy.md explains each. */
const localOnlySettings = [
  'FUNCTIONS_WORKER_RUNTIME', // Flex Consumption sets the runtime in functionAppConfig instead
  'AzureWebJobsFeatureFlags',
  'AzureWebJobsStorage', // Azure uses AzureWebJobsStorage__* (managed identity)
  'IOTHUB_CONNECTION_STRING', // Azure uses IOTHUB_HOST_NAME (managed identity)
];

let parser: Parser;
const sources = new Map<string, string>();
const trees = new Map<string, SyntaxNode>();

beforeAll(async () => {
  await Parser.init();
  const bicep = await Language.load(
    readFileSync(require.resolve('tree-sitter-bicep/tree-sitter-bicep.wasm')),
  );
  parser = new Parser();
  parser.setLanguage(bicep);
  for (const file of bicepFiles(infra)) {
    const text = readFileSync(file, 'utf8');
    sources.set(file, text);
    const tree = parser.parse(text);
    if (!tree) throw new Error(`tree-sitter returned no tree for ${file}`);
    trees.set(file, tree.rootNode);
  }
});

function descendants(node: SyntaxNode, type: string): SyntaxNode[] {
  return node.descendantsOfType(type).filter((n): n is SyntaxNode => n !== null);
}

function firstError(node: SyntaxNode): string | undefined {
  if (node.type === 'ERROR' || node.isMissing) {
    return `line ${node.startPosition.row + 1}: ${node.isMissing ? 'missing' : 'unexpected'} ${node.text.slice(0, 40)}`;
  }
  for (const child of node.children) {
    if (!child) continue;
    const found = firstError(child);
    if (found) return found;
  }
  return undefined;
}

describe('infra/*.bicep', () => {
  it('finds the main template and its modules', () => {
    const names = [...trees.keys()].map((f) => relative(infra, f)).sort();
    expect(names).toEqual([
      'main.bicep',
      'modules/functionapp.bicep',
      'modules/iothub.bicep',
      'modules/monitoring.bicep',
      'modules/storage.bicep',
    ]);
  });

  it('parses every file without syntax errors', () => {
    for (const [file, node] of trees) {
      expect({ file: relative(root, file), error: firstError(node) }).toEqual({
        file: relative(root, file),
        error: undefined,
      });
    }
  });

  it('detects a syntax error (the check can fail)', () => {
    const broken = parser.parse("resource x 'Microsoft.Web/sites@2024-04-01' = {\n  name: \n}}");
    expect(broken && firstError(broken.rootNode)).toBeDefined();
  });

  it('declares every resource type the design needs', () => {
    const declared = new Set<string>();
    for (const node of trees.values()) {
      for (const resource of descendants(node, 'resource_declaration')) {
        const type = descendants(resource, 'string')[0]?.text.replace(/'/g, '').split('@')[0];
        if (type) declared.add(type);
      }
    }
    for (const type of [
      'Microsoft.Devices/IotHubs',
      'Microsoft.Devices/IotHubs/eventHubEndpoints/ConsumerGroups',
      'Microsoft.Storage/storageAccounts',
      'Microsoft.Storage/storageAccounts/blobServices/containers',
      'Microsoft.Storage/storageAccounts/tableServices/tables',
      'Microsoft.Web/serverfarms',
      'Microsoft.Web/sites',
      'Microsoft.Insights/components',
      'Microsoft.OperationalInsights/workspaces',
      'Microsoft.ManagedIdentity/userAssignedIdentities',
      'Microsoft.Authorization/roleAssignments',
    ]) {
      expect(declared).toContain(type);
    }
  });

  it('runs on Flex Consumption with a supported Node.js LTS: 22 by default, 24 allowed', () => {
    const app = sources.get(join(infra, 'modules', 'functionapp.bicep'))!;
    expect(app).toMatch(/tier: 'FlexConsumption'/);
    expect(app).toMatch(/name: 'node'\s+version: nodeVersion/);
    const main = sources.get(join(infra, 'main.bicep'))!;
    const declared = /@allowed\(\[([^\]]*)\]\)\s*param nodeVersion string = '(\d+)'/.exec(main);
    const allowed = [...(declared?.[1] ?? '').matchAll(/'(\d+)'/g)].map((m) => m[1]);
    // Azure Functions ended Node.js 20 support on 2026-04-30.
    expect({ allowed, default: declared?.[2] }).toEqual({ allowed: ['22', '24'], default: '22' });
    const parameters = readFileSync(join(infra, 'main.parameters.json'), 'utf8');
    expect(parameters).not.toMatch(/nodeVersion/);
  });

  it('is tested in CI on every Node.js version it may deploy, the default by name', () => {
    const main = sources.get(join(infra, 'main.bicep'))!;
    const declared = /@allowed\(\[([^\]]*)\]\)\s*param nodeVersion string = '(\d+)'/.exec(main);
    const allowed = [...(declared?.[1] ?? '').matchAll(/'(\d+)'/g)].map((m) => m[1]);
    const ci = readFileSync(join(root, '.ci', 'run'), 'utf8');
    const deployedInCi = /^deployed_node=(\d+)$/m.exec(ci)?.[1];
    expect(deployedInCi).toBe(declared?.[2]);
    const loop = /^for other_node in (.+); do$/m.exec(ci)?.[1] ?? '';
    const tested = loop
      .split(/\s+/)
      .map((version) => (version === '"$deployed_node"' ? deployedInCi : version));
    expect(allowed.length).toBeGreaterThan(0);
    expect(tested).toEqual(expect.arrayContaining(allowed));
    expect(ci).toMatch(/npx -y -p "node@\$other_node" -- node dist\/test\/support\/run-jest\.js/);
  });

  it('never puts a key or connection string in an output', () => {
    const leaking = [...trees.entries()].flatMap(([file, node]) =>
      descendants(node, 'output_declaration')
        .map((output) => output.text)
        .filter((text) => /listKeys|connectionString|SharedAccessKey|primaryKey|secret/i.test(text))
        .map((text) => `${relative(root, file)}: ${text}`),
    );
    expect(leaking).toEqual([]);
  });

  it('uses no registry modules (they need a network restore)', () => {
    for (const [file, text] of sources) {
      expect({ file, hasRegistryModule: /module\s+\w+\s+'(br|ts)[:/]/.test(text) }).toEqual({
        file,
        hasRegistryModule: false,
      });
    }
  });

  it('never grants the app the iothubowner policy', () => {
    const app = sources.get(join(infra, 'modules', 'functionapp.bicep'))!;
    expect(app).not.toMatch(/iothubowner/);
    expect(app).toMatch(/SharedAccessKeyName=telemetryreader/);
  });

  it('sets every app setting the code reads, or documents it as local-only', () => {
    const app = sources.get(join(infra, 'modules', 'functionapp.bicep'))!;
    const configured = new Set([...app.matchAll(/\{ name: '([^']+)', value:/g)].map((m) => m[1]));
    const example = JSON.parse(readFileSync(join(root, 'local.settings.json.example'), 'utf8')) as {
      Values: Record<string, string>;
    };
    const needed = new Set([...Object.values(SettingNames), ...Object.keys(example.Values)]);
    const deployDoc = readFileSync(join(root, 'docs', 'deploy.md'), 'utf8');
    // The two identity alternatives are satisfied by their __* / host-name forms.
    for (const name of needed) {
      if (localOnlySettings.includes(name)) {
        expect({ name, documented: deployDoc.includes(`\`${name}\``) }).toEqual({
          name,
          documented: true,
        });
        continue;
      }
      expect({ name, configured: configured.has(name) }).toEqual({ name, configured: true });
    }
  });
});
