// The ES-module tail of the browser client: logboard serves /static/logboard.mjs as
// static/logboard.js followed by these lines (src/web/assets.rs), so one request gives both.
export var Logboard = globalThis.Logboard, LogboardVue = globalThis.LogboardVue;
export default Logboard;
