// Start page: translations only.
import * as i18n from './i18n.js';

i18n.init().catch((err) => console.error(err));
