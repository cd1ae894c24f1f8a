// Renders media/icon.svg to the 256x256 media/icon.png the manifest names (run after editing the SVG).
import sharp from 'sharp';
await sharp('media/icon.svg').resize(256, 256).png().toFile('media/icon.png');
