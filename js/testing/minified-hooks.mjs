// Module resolution hooks for testing/minified.mjs: any module under src/ is the minified build instead.
let src = "";
let bundle = "";

export async function initialize(data) {
  ({ src, bundle } = data);
}

export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  return resolved.url.startsWith(src) ? { ...resolved, url: bundle, shortCircuit: true } : resolved;
}
