import { createMemoryRunStore } from '../../src/store/memory-store.js';
import { runStoreContract } from './contract.js';

runStoreContract('memory', (clock) => createMemoryRunStore({ clock }));
