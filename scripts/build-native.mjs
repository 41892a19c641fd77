// Builds the C++ merge kernels with node-gyp at install time. A failed build is not fatal:
// evomerge then runs the TypeScript twins of each kernel and says so once at run time.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

if (!existsSync('binding.gyp')) process.exit(0);
const gyp = process.env.npm_config_node_gyp;
const [cmd, args] = gyp ? [process.execPath, [gyp, 'rebuild']] : ['node-gyp', ['rebuild']];
const r = spawnSync(cmd, args, { stdio: 'inherit' });
if (r.status !== 0) {
  console.warn('evomerge: native kernels could not be built; the TypeScript kernels will be used (slower).');
}
