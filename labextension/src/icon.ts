import { LabIcon } from '@jupyterlab/ui-components';

/** A trunk that forks into two branches; strokes follow the theme (jp-icon3). */
const FORK_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g fill="none" stroke-width="2" stroke-linecap="round">
    <circle class="jp-icon3" stroke="#616161" cx="6" cy="5" r="2.2"/>
    <circle class="jp-icon3" stroke="#616161" cx="6" cy="19" r="2.2"/>
    <circle class="jp-icon3" stroke="#616161" cx="18" cy="8" r="2.2"/>
    <path class="jp-icon3" stroke="#616161" d="M6 7.2v9.6M18 10.2c0 4-12 2.5-12 6.6"/>
  </g>
</svg>`;

export const forkIcon = new LabIcon({
  name: 'forkd-jupyter:fork',
  svgstr: FORK_SVG
});
