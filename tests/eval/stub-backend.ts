import { BackendCounters } from '../../src/eval/backend.js';
import type { BackendStats, GenerateRequest, GenerateResult, InferenceBackend, LoglikelihoodRequest, LoglikelihoodResult, ModelRef } from '../../src/eval/types.js';

/**
 * A fixed-answer inference backend for scoring tests: the evaluators are under test, not the
 * model, so answers come from functions the test writes. It records every request.
 */
export class StubBackend implements InferenceBackend {
  readonly name = 'stub';
  readonly needs = 'hf-dir' as const;
  readonly generated: GenerateRequest[] = [];
  readonly scored: LoglikelihoodRequest[] = [];
  readonly models: ModelRef[] = [];
  private readonly counters = new BackendCounters();
  private readonly answer: (r: GenerateRequest) => string;
  private readonly logprob: (r: LoglikelihoodRequest) => number;

  constructor(answer: (r: GenerateRequest) => string = () => '', logprob: (r: LoglikelihoodRequest) => number = () => -1) {
    this.answer = answer;
    this.logprob = logprob;
  }

  async useModel(model: ModelRef): Promise<void> {
    this.models.push(model);
  }

  async generate(requests: readonly GenerateRequest[]): Promise<GenerateResult[]> {
    this.generated.push(...requests);
    this.counters.generateRequests += requests.length;
    return requests.map((r) => ({ text: this.answer(r), tokens: 3, finish: 'stop' as const }));
  }

  async loglikelihood(requests: readonly LoglikelihoodRequest[]): Promise<LoglikelihoodResult[]> {
    this.scored.push(...requests);
    this.counters.loglikelihoodRequests += requests.length;
    return requests.map((r) => ({ logprob: this.logprob(r), greedy: false, tokens: 1 }));
  }

  stats(): BackendStats {
    return this.counters.snapshot();
  }

  async close(): Promise<void> {}
}
