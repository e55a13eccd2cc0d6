// Charts for the reports and the live floor: uPlot (gateway/web-vendor, copied into
// /vendor/ by scripts/web-vendor.sh; docs/decisions.md), loaded on first use so that a
// page without a chart never fetches it, and a missing copy only costs the chart.

const LOADER = '/js/uplot.js'; // imports /vendor/uPlot.esm.js
const STYLE = '/vendor/uPlot.min.css';
const OWN_STYLE = '/css/reports.css';
let loading = null;

// The pages' own styles (css/reports.css), once per tab.
export function loadStyles() {
  if (!document.querySelector(`link[href="${OWN_STYLE}"]`)) {
    const link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = OWN_STYLE;
    document.head.append(link);
  }
}

// Resolves to the uPlot constructor; rejects when /vendor/ does not have it.
export function loadChart() {
  if (!loading) {
    if (!document.querySelector(`link[href="${STYLE}"]`)) {
      const link = document.createElement('link');
      link.rel = 'stylesheet';
      link.href = STYLE;
      document.head.append(link);
    }
    loading = new Promise((resolve, reject) => {
      if (globalThis.nccUPlot) {
        resolve(globalThis.nccUPlot);
        return;
      }
      const script = document.createElement('script');
      script.type = 'module';
      script.src = LOADER;
      script.addEventListener('load', () => {
        if (globalThis.nccUPlot) resolve(globalThis.nccUPlot);
        else reject(new Error('uPlot did not load'));
      });
      script.addEventListener('error', () => {
        script.remove();
        reject(new Error('uPlot is not installed (scripts/web-vendor.sh)'));
      });
      document.head.append(script);
    }).catch((error) => {
      loading = null; // tried again on the next chart
      throw error;
    });
  }
  return loading;
}

// Series colours (contrast at least 3:1 on white, WCAG 1.4.11), the same on every chart.
export function chartColors() {
  return {
    offered: '#1d5fa8', answered: '#2e7d32', abandoned: '#c62828', level: '#6a1b9a',
    waiting: '#c25e00', inProgress: '#1d5fa8', afterCall: '#6a1b9a',
  };
}
