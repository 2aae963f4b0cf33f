/**
 * Plots: PNG and SVG as images (an SVG is an <img> source, never markup in the page), plotly figures as
 * interactive charts (plotly.js, loaded on first use). Each can be shown full size and downloaded.
 */
import { useEffect, useRef, useState } from "react";
import type { Plot } from "./types";

export interface PlotViewerProps {
  plots: Plot[];
}

type PlotlyModule = typeof import("plotly.js-dist-min");
let plotly: Promise<PlotlyModule> | null = null;
function loadPlotly(): Promise<PlotlyModule> {
  plotly ??= import("plotly.js-dist-min").then((m) => (m as unknown as { default?: PlotlyModule }).default ?? m);
  return plotly;
}

function imageUrl(plot: Plot): string {
  const mime = plot.format === "svg" ? "image/svg+xml" : "image/png";
  return `data:${mime};base64,${String(plot.data)}`;
}

function ImagePlot({ plot, index }: { plot: Plot; index: number }) {
  const [full, setFull] = useState(false);
  const url = imageUrl(plot);
  const label = `Plot ${index + 1} (${plot.format.toUpperCase()}${plot.width ? `, ${plot.width}×${plot.height} px` : ""})`;
  return (
    <figure className="penny-plot" data-testid="plot-image">
      <button type="button" className="penny-plot-zoom" onClick={() => setFull(true)}
        aria-label={`${label}: show full size`}>
        <img src={url} alt={label} />
      </button>
      <figcaption>
        {label}
        <a className="penny-button" href={url} download={`plot-${index + 1}.${plot.format}`}>Download</a>
      </figcaption>
      {full && (
        <div className="penny-lightbox" role="dialog" aria-modal="true" aria-label={`${label}, full size`}
          onKeyDown={(e) => e.key === "Escape" && setFull(false)}>
          <button type="button" className="penny-button" autoFocus onClick={() => setFull(false)}>Close</button>
          <div className="penny-lightbox-body"><img src={url} alt={label} /></div>
        </div>
      )}
    </figure>
  );
}

function PlotlyPlot({ plot, index }: { plot: Plot; index: number }) {
  const container = useRef<HTMLDivElement>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const node = container.current;
    if (!node) return;
    let cancelled = false;
    const figure = (typeof plot.data === "string" ? JSON.parse(plot.data) : plot.data) as
      { data?: unknown[]; layout?: Record<string, unknown> };
    loadPlotly().then((Plotly) => {
      if (cancelled) return;
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      return (Plotly as any).newPlot(node, figure.data ?? [], { autosize: true, ...(figure.layout ?? {}) },
        { responsive: true, displaylogo: false });
    }).catch((e: unknown) => setError(String(e)));
    return () => {
      cancelled = true;
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      loadPlotly().then((Plotly) => (Plotly as any).purge(node)).catch(() => undefined);
    };
  }, [plot]);
  return (
    <figure className="penny-plot" data-testid="plot-plotly">
      <div ref={container} className="penny-plotly" role="img" aria-label={`Interactive chart ${index + 1}`} />
      {error && <p role="alert">The chart could not be drawn: {error}</p>}
      <figcaption>Interactive chart {index + 1} (plotly: drag to zoom, double-click to reset; the camera icon
        downloads a PNG)</figcaption>
    </figure>
  );
}

export function PlotViewer({ plots }: PlotViewerProps) {
  if (plots.length === 0) return <p className="penny-empty">No plots. <code>plt.show()</code> or a plotly
    figure's <code>fig.show()</code> shows one here.</p>;
  return (
    <div className="penny-plots">
      {plots.map((plot, index) => plot.format === "plotly"
        ? <PlotlyPlot key={index} plot={plot} index={index} />
        : <ImagePlot key={index} plot={plot} index={index} />)}
    </div>
  );
}
