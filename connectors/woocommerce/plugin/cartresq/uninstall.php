<?php
/**
 * Remove the plugin's option. The REST keys and webhooks belong to WooCommerce and are revoked there.
 *
 * @package CartResQ
 */

defined( 'WP_UNINSTALL_PLUGIN' ) || exit;

delete_option( 'cartresq_settings' );
