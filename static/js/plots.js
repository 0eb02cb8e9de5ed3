// Draws each figure the server rendered as JSON (see dashboards/figures.py). A static file rather than an
// inline script per figure, because the Content-Security-Policy allows scripts only from this site.
document.querySelectorAll('script[data-plotly-figure]').forEach((data) => {
  const {figure, config} = JSON.parse(data.textContent);
  Plotly.newPlot(data.dataset.plotlyFigure, figure.data, figure.layout, config);
});
