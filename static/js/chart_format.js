// The one home of how charts write numbers. Every chart axis and tooltip in static/js uses it.
//
// Axis rule: all ticks of one axis share the number of decimals that their step needs, so
// sub-bitcoin values read "0.25 BTC, 0.5 BTC, 0.75 BTC" instead of "0 BTC, 1 BTC, 1 BTC".
// Single values (tooltips, tables) keep three significant digits below 1 BTC, two decimals
// below 100 BTC and none above: "0.000123 BTC", "12.35 BTC", "1,234 BTC".
(function (root) {
  "use strict";

  const MAX_DECIMALS = 8; // a satoshi

  function decimalsForStep(step) {
    if (!Number.isFinite(step) || step <= 0) return 0;
    // 1e-9 absorbs float noise such as 0.30000000000000004 - 0.2.
    const digits = Math.ceil(-Math.log10(step) - 1e-9);
    return Math.max(0, Math.min(MAX_DECIMALS, digits));
  }

  function decimalsForValue(value) {
    const size = Math.abs(value);
    if (size === 0 || size >= 100) return 0;
    if (size >= 1) return 2;
    return Math.max(0, Math.min(MAX_DECIMALS, Math.ceil(-Math.log10(size)) + 2));
  }

  function number(value, decimals) {
    // Trailing zeros go: "0.50" reads as "0.5", like the other ticks of its axis.
    return Number(value).toLocaleString("en-US", { minimumFractionDigits: 0, maximumFractionDigits: decimals });
  }

  function axisStep(ticks) {
    let step = Infinity;
    for (let i = 1; i < (ticks || []).length; i++) {
      const gap = Math.abs(ticks[i].value - ticks[i - 1].value);
      if (gap > 0 && gap < step) step = gap;
    }
    return step;
  }

  // For Chart.js `ticks.callback(value, index, ticks)`; `unit` is appended ("BTC", "%");
  // `absolute` writes magnitudes only (outflow drawn below the axis).
  function axisTick(unit, { absolute = false } = {}) {
    return function (value, index, ticks) {
      const step = axisStep(ticks);
      const shown = absolute ? Math.abs(value) : value;
      const decimals = Number.isFinite(step) ? decimalsForStep(step) : decimalsForValue(shown);
      return unit ? `${number(shown, decimals)} ${unit}` : number(shown, decimals);
    };
  }

  function value(amount, unit) {
    const text = number(amount, decimalsForValue(Number(amount)));
    return unit ? `${text} ${unit}` : text;
  }

  root.ChartFormat = { axisTick, value, decimalsForStep, decimalsForValue };
})(window);
