#!/usr/bin/env node
// The package's command. tsc writes the CLI to dist/; this stays put so npm can link the bin at
// install time, before anything is built.
require('../dist/cli.js');
