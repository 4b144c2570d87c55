/**
 * Charts as PNG files without a browser: ECharts renders SVG on the server (ssr), resvg rasterizes it
 * with the machine's fonts.
 */
import { writeFile } from 'node:fs/promises';
import { Resvg } from '@resvg/resvg-js';
import * as echarts from 'echarts';

const FONT = 'DejaVu Sans, Liberation Sans, Arial, sans-serif';
const WIDTH = 900;
const HEIGHT = 500;

export type ChartOption = echarts.EChartsOption;

export function renderSvg(option: ChartOption, width = WIDTH, height = HEIGHT): string {
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width, height });
  try {
    chart.setOption({ animation: false, backgroundColor: '#ffffff', textStyle: { fontFamily: FONT }, ...option });
    return chart.renderToSVGString();
  } finally {
    // Without it the chart's timers keep the process alive.
    chart.dispose();
  }
}

export async function writePng(path: string, option: ChartOption): Promise<void> {
  const svg = renderSvg(option);
  const png = new Resvg(svg, {
    background: '#ffffff',
    fitTo: { mode: 'width', value: WIDTH * 1.5 },
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  })
    .render()
    .asPng();
  await writeFile(path, png);
}
