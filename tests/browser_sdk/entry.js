// One file the test page loads from loopback: nothing comes from a CDN.
import { AnalyticsBrowser } from '@segment/analytics-next'

window.AnalyticsBrowser = AnalyticsBrowser
