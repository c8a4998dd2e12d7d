export { startInspector, serveTrace, type InspectorOptions, type InspectorHandle } from './server';
export { Sampler, opName, type SamplerOptions } from './sampler';
export { TraceRecorder, type RecorderOptions } from './recorder';
export { allCharts, machineChart, requestLogicChart } from './charts';
export type * from './protocol';
